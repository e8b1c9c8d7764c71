"""The example dialogs shipped with dialtone (YAML files beside this module)."""
