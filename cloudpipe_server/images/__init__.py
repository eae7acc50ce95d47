"""Images built by the server from validated specs (issue 14): `spec` (the domain value
and its validation), `dockerfile` (spec -> Dockerfile and build context), `wheels` (pip
packages downloaded on the server host), `build` (the engine build, confined and
locked per digest), `service` (accounts, get/list/delete), `access` (jobs may only name
their own account's images)."""
