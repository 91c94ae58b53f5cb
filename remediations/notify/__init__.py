"""Notifications: the ``notify.*`` actions and the delivery to each notifier kind."""
