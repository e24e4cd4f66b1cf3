"""One module per AWS resource kind, all following resources.base.Resource."""
