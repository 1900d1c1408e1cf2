"""The HTTP pieces every area of the API shares: request bodies (`wire`), list pages and cursors
(`pagination`, `cursor`), the audit log of writes (`auditing`), admission (`admission`), the dependencies
handlers receive from the runtime (`dependencies`) and the skeleton of a resource (`resource`)."""
