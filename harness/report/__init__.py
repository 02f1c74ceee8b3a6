"""Reports: tables rendered to Markdown, CSV and LaTeX."""
