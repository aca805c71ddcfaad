"""Who may call the server and how much: SigV4 access keys and their storage, IAM-style
policies, request rates and the other limits that keep one client from starving the
rest. The protocol layer verifies signatures; this package decides whose they are."""
