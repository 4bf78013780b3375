"""The equipment pre-check (设备检查): each check proves one part of a test-room computer ready."""
