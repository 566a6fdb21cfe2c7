"""The project file (`mdm.toml`): `mdm init` writes one, `mdm config show` explains them."""
