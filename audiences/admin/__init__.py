from audiences.admin import customers, identity, segments  # noqa: F401  (registers the model admins)
