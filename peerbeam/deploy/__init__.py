"""Deploy peerbeam into an AWS account: one CloudFormation stack per stage.

``package`` turns the Chalice app plus ``.chalice/merge-template.json`` (and the
response headers policy ``headers`` renders from ``peerbeam.website``) into a
CloudFormation template in ``dist/<stage>/``; ``stack`` deploys it with a change
set (no change set, no update); ``site`` uploads the web client and its
``config.json`` and invalidates only what changed; ``commands`` strings them
together for ``peerbeam deploy`` / ``make deploy``. See docs/deploy.md.
"""
