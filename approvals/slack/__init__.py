"""Slack approvals (contract section 8): a pending proposal's message in its tenant's review channel
(``blocks``), staged through the outbox (``notify``), sent by the worker (``deliver``), and the Request URL
that takes the reviewers' clicks (``interactions``)."""
