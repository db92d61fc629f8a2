"""Code shared by every Lambda function and by the CDK stacks that wire them."""
