"""Druid's server view over HTTP long polling.

* ``changes``: ``{"action": "load"|"drop", <DataSegment fields>}`` change requests;
* ``announcer``: what a data node (historical, peon) serves, as a long-poll change history;
* ``inventory``: ``HttpServerInventoryView``, every data node's segments, kept current by one
  long-poll syncer per node (brokers and coordinators).
"""
