"""integration_gateway: dialog `call` actions -> customer REST backends."""
