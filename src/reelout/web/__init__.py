"""The console: server-rendered pages (Jinja2) with the browser libraries installed from npm."""
