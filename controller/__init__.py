"""The ops side of hotconf: CLI, inventory, push over SSH, fleet status, HTTP API."""
