"""Reports: tables rendered to Markdown, CSV and LaTeX; regression checks; paper reproduction."""


class ReportError(ValueError):
    """Inputs a report cannot be made from: an unusable baseline, results made with other settings or code."""
