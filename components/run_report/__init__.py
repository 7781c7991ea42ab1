"""The RunReport component: every pipeline run's static HTML page (see `reporting/`)."""

from components.run_report.component import RunReport, RunReportArtifact

__all__ = ["RunReport", "RunReportArtifact"]
