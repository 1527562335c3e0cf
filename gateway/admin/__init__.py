"""Operators' tools on the admin listener: the admin API (``/admin/v1``), the web console
(``/console/``) and the append-only audit log. Never served on the partner port."""
