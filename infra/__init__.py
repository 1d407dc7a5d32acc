"""Deployment infrastructure: CloudFormation resources generated from the PynamoDB models,
the IAM policies of each stage, and the packaging step around `chalice package`.

Build-time only: nothing here is deployed with the functions (chalice ships app.py and chalicelib/).
"""
