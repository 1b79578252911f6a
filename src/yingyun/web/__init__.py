"""HTTP plumbing shared by the gateway and cloud apps."""
