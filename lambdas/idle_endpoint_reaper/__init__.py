"""Scheduled teardown of idle SageMaker endpoints that the platform created.

`handler.handler` is the Lambda entry point; `reaper.reap` holds the logic and takes its boto3
clients as arguments. `restore_record` is shared with `tools/restore_endpoint.py`.
"""
