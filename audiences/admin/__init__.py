from audiences.admin import customers, segments  # noqa: F401  (registers the model admins)
