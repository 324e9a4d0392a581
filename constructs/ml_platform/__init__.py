"""The reusable construct library of the SageMaker ML platform.

This folder is a source root, not a package: a top-level package named
``constructs`` would shadow the CDK ``constructs`` library (aws/aws-cdk#19301).
"""
