"""The CRM adapter: a Zendesk Tickets API subset (contract section 4). A real Zendesk works too."""
