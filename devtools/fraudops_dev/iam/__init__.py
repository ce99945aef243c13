"""What AWS would allow: IAM policy evaluation for the calls the tests record (docs/iam.md)."""
