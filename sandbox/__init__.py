"""A local stand-in payment platform: WeChat Pay v2/v3 and Alipay endpoints that the real SDKs talk to."""
