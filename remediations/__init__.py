"""The action catalogue: what remediator can do, one module per backend.

``receiver`` reaches actions only through a :class:`remediations.registry.Registry`; no
module here imports the HTTP layer. Backend SDKs are imported inside their module.
"""
