"""The Slack adapter: Web API ``chat.postMessage`` (contract section 4)."""
