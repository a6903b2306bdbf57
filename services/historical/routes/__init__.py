"""The historical's HTTP routes: the load queue (``segments``) and the probes (``probes``)."""
