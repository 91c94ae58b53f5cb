"""Notifications: the ``notify.*`` actions and the delivery to each notifier kind.

``remediations.notify.actions`` holds the four actions (``notify.log``, ``notify.slack``,
``notify.pagerduty``, ``notify.webhook``), registered by
``remediations.registry.default_registry``; ``remediations.notify.delivery`` sends one
notice to one configured notifier (Slack, PagerDuty, a webhook) and is also how
``receiver.flow`` announces approvals, pauses and escalations. The notifier configs
themselves are ``remediations.notifiers``.
"""
