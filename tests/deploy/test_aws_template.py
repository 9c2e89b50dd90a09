"""deploy/aws/template.yaml (AWS SAM), checked offline: cfn-lint, and agreement with the image service."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfnlint.decode import cfn_yaml

from imageservice.adapters.aws import init_aws
from imageservice.bootstrap import aws_settings
from imageservice.settings import Settings
from strangler_common.shadowmark import MIN_KEY_BYTES
from tests.deploy.tools import DEPLOY, REPO, run, tool

TEMPLATE = DEPLOY / "aws" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded = cfn_yaml.load(str(TEMPLATE))
    assert isinstance(loaded, dict)
    return loaded


def resources(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_passes() -> None:
    result = run(tool("cfn-lint"), str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_does_catch_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("BillingMode: PAY_PER_REQUEST", "BillingMode: FREE_LUNCH"))
    result = run(tool("cfn-lint"), str(broken))
    assert result.returncode != 0
    assert "FREE_LUNCH" in result.stdout


class _FakeDynamoDB:
    def __init__(self) -> None:
        self.created: dict[str, Any] = {}
        self.ttl: dict[str, Any] = {}

    def describe_table(self, **_: Any) -> None:
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "DescribeTable")

    def create_table(self, **kwargs: Any) -> None:
        self.created = kwargs

    def get_waiter(self, _: str) -> SimpleNamespace:
        return SimpleNamespace(wait=lambda **_: None)

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.ttl = kwargs


def test_the_table_has_the_layout_init_aws_creates_with_ttl_on_the_same_attribute(
    template: dict[str, Any],
) -> None:
    dynamodb = _FakeDynamoDB()
    clients = SimpleNamespace(
        settings=aws_settings(Settings()), s3=SimpleNamespace(head_bucket=lambda **_: None), dynamodb=dynamodb
    )
    init_aws(clients)  # type: ignore[arg-type]  # a fake with the calls init_aws makes
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == dynamodb.created["BillingMode"]
    assert sorted(map(dict, props["AttributeDefinitions"]), key=str) == sorted(
        dynamodb.created["AttributeDefinitions"], key=str
    )
    assert [dict(k) for k in props["KeySchema"]] == dynamodb.created["KeySchema"]
    mine = {i["IndexName"]: [dict(k) for k in i["KeySchema"]] for i in props["GlobalSecondaryIndexes"]}
    theirs = {i["IndexName"]: i["KeySchema"] for i in dynamodb.created["GlobalSecondaryIndexes"]}
    assert mine == theirs
    ttl = dynamodb.ttl["TimeToLiveSpecification"]
    assert dict(props["TimeToLiveSpecification"]) == {"AttributeName": ttl["AttributeName"], "Enabled": True}


def test_the_function_is_the_lambda_image_of_dockerfile_service_behind_an_http_api(
    template: dict[str, Any],
) -> None:
    (function,) = resources(template, "AWS::Serverless::Function").values()
    assert function["Properties"]["PackageType"] == "Image"
    metadata = function["Metadata"]
    dockerfile = (TEMPLATE.parent / metadata["DockerContext"] / metadata["Dockerfile"]).resolve()
    assert dockerfile == REPO / "Dockerfile.service"
    assert f" AS {metadata['DockerBuildTarget']}\n" in dockerfile.read_text()
    events = function["Properties"]["Events"].values()
    assert {e["Type"] for e in events} == {"HttpApi"}
    assert {e["Properties"]["Path"] for e in events} >= {"/api/images", "/api/images/{proxy+}"}
    assert resources(template, "AWS::Serverless::HttpApi")
    assert "ImagesApiUrl" in template["Outputs"]


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    (function,) = resources(template, "AWS::Serverless::Function").values()
    return [s for policy in function["Properties"]["Policies"] for s in policy["Statement"]]


def test_the_function_environment_is_what_the_image_service_reads(template: dict[str, Any]) -> None:
    (function,) = resources(template, "AWS::Serverless::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    # Its settings, and the secrets it shares with the proxy (strangler_common/envsecret.py).
    readers = [REPO / "imageservice" / "settings.py", *sorted((REPO / "strangler_common").glob("*.py"))]
    source = "".join(path.read_text() for path in readers)
    for name in variables:
        assert f'"{name}"' in source, f"the image service never reads {name}"
    assert variables["IMAGESERVICE_STORAGE"] == "aws"
    key = str(variables["OPENAI_API_KEY"])
    assert "resolve:secretsmanager" in key
    assert "sk-" not in TEMPLATE.read_text()


def test_iam_is_least_privilege_no_wildcard_actions_or_resources(template: dict[str, Any]) -> None:
    assert statements(template)
    for statement in statements(template):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        assert "*" not in str(statement["Resource"]).replace("/images/*", ""), statement


def test_list_bucket_is_granted_on_the_bucket_with_no_s3_prefix_condition(template: dict[str, Any]) -> None:
    """S3 answers a missing key with 404 only to a caller allowed s3:ListBucket on the bucket, and
    GetObject/HeadObject carry no s3:prefix: with a prefix condition every missing image is a 403."""
    listing = [s for s in statements(template) if "s3:ListBucket" in s["Action"]]
    assert listing, "without s3:ListBucket a missing image is a 403 AccessDenied, not a 404"
    for statement in listing:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == {"Fn::GetAtt": ["ImagesBucket", "Arn"]}
        assert "s3:prefix" not in str(statement.get("Condition", {})), statement
    objects = [s for s in statements(template) if "s3:GetObject" in s["Action"]]
    assert objects
    assert all("Condition" not in s for s in objects)


def test_the_function_gets_the_shadow_key_from_a_generated_secret_unless_one_is_given(
    template: dict[str, Any],
) -> None:
    (function,) = resources(template, "AWS::Serverless::Function").values()
    key = function["Properties"]["Environment"]["Variables"]["STRANGLER_SHADOW_KEY"]
    reference, arguments = key["Fn::Sub"]
    assert reference == "{{resolve:secretsmanager:${ShadowKeyArn}:SecretString}}"  # like the OpenAI key
    chosen = {"Fn::If": ["GenerateShadowKey", {"Ref": "ShadowKeySecret"}, {"Ref": "ShadowKeySecretArn"}]}
    assert arguments == {"ShadowKeyArn": chosen}
    assert template["Parameters"]["ShadowKeySecretArn"]["Default"] == ""
    assert template["Conditions"]["GenerateShadowKey"] == {"Fn::Equals": [{"Ref": "ShadowKeySecretArn"}, ""]}
    secret = template["Resources"]["ShadowKeySecret"]
    assert (secret["Type"], secret["Condition"]) == ("AWS::SecretsManager::Secret", "GenerateShadowKey")
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= MIN_KEY_BYTES
    assert "GenerateStringKey" not in generated, "the SecretString is the key itself, not JSON"
    assert template["Outputs"]["ShadowKeySecretArn"]["Value"] == chosen  # for the proxy, elsewhere


def test_every_log_group_has_a_retention(template: dict[str, Any]) -> None:
    groups = resources(template, "AWS::Logs::LogGroup")
    assert len(groups) >= 2
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())
    (function,) = resources(template, "AWS::Serverless::Function").values()
    assert re.fullmatch(r"\w+", function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"])
