"""HTTP plumbing: middleware, conditional requests, response helpers, and the one module that
turns errors into responses (`todo_api.http.errors`)."""
