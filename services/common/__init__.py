"""Code every dialtone service shares: config, logging, metrics, gRPC bootstrap, audio frames, ids."""
