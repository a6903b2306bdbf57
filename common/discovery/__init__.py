"""Discovery and leader election.

The contracts (``base``, ``leader``), Druid's node JSON (``node``) and the backends (``metadata``
here, ``k8s`` in ``common.k8s``), one of which ``backend.open_discovery`` picks.
"""
