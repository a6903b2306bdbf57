"""The ``k8s`` discovery backend (``druid.discovery.type=k8s``), as Druid's kubernetes-extensions.

``backend.K8sDiscoveryBackend`` wires ``announcer`` (labels and annotation on the pod itself),
``watch`` (LIST + WATCH of labelled pods) and ``locks`` (ConfigMap or Lease leader locks) over
``client`` (the only place that imports kubernetes_asyncio); ``pods`` holds the pure parts.
"""
