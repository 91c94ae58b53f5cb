"""The rule language of remediator, pure: no I/O, no asyncio, no backend SDK.

``receiver`` loads rule files through :func:`rules.loader.load_rules`, builds a
:class:`rules.engine.RuleIndex`, and for every alert calls ``RuleIndex.match`` and
:func:`rules.priority.classify`.
"""
