"""Native batch ingestion (Druid's ``index_parallel`` / ``index``): task spec, input sources,
input formats and partitioning. The peon's runner (``services/peon/batch_task.py``) wires them."""
