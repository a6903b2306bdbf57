"""Druid's ``druid-basic-security``: authentication, authorization, the escalator and TLS.

* ``model``: resources, actions, permissions and the user/role maps (Druid's JSON shapes);
* ``passwords``: PBKDF2-SHA512 credentials and Druid's ``PasswordProvider`` forms;
* ``config``: ``druid.auth.*``, ``druid.escalator.*`` and the TLS keys, parsed and checked;
* ``db``: the security database (users, credentials, roles) as one pure snapshot with edits;
* ``engine``: the authenticator chain and the authorizers over a snapshot;
* ``declare``: what every route declares it needs, the app-creation check, the request guard;
* ``sync``: the coordinator's store side (compare-and-swap edits) and the other nodes' fetch;
* ``notify``: changes pushed to every node over HTTP long polling;
* ``node``: what a ``NodeService`` holds (snapshot, engine, clients, refresh tasks);
* ``endpoints``: ``/druid-ext/basic-security/...`` (managed on the coordinator, cached elsewhere);
* ``clients``: the one place internal HTTP clients are made (escalator credentials, CA, TLS).

See docs/security.md.
"""
