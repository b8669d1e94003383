"""Firmware deployments on AWS IoT Jobs: the job requests (:mod:`.iot`), our
deployment record in DynamoDB (:mod:`.records`) and the ``DeploymentService``
port over both (:mod:`.service`)."""

from plugins.aws.jobs.iot import MAX_TARGETS, IotJobs, JobExecution, JobState

__all__ = ["MAX_TARGETS", "IotJobs", "JobExecution", "JobState"]
