"""Builds the CDK app from a validated config: the one place stacks are instantiated and wired."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from lambdas.common import tags
from stacks.checkov_skips import apply_checkov_skips
from stacks.config import ConfigError, PlatformConfig
from stacks.nag_acknowledgments import acknowledge_findings
from stacks.network_stack import NetworkStack, existing_network_refs
from stacks.platform_stack import PlatformStack, domain_id_export_name
from stacks.stage_stacks import StagePlatformStack, StageTeamStack
from stacks.team_stack import TeamStack

# Tags on these force replacement, so the tag aspect leaves them alone (they carry fixed tags of their own).
REPLACED_ON_TAG_CHANGE = ["AWS::SageMaker::Domain", "AWS::SageMaker::UserProfile"]


def network_stack_name(config: PlatformConfig) -> str:
    return f"{config.prefix}-network"


def platform_stack_name(config: PlatformConfig) -> str:
    return f"{config.prefix}-platform"


def team_stack_name(config: PlatformConfig, team_name: str) -> str:
    return f"{config.prefix}-team-{team_name}"


def stage_platform_stack_name(config: PlatformConfig, stage_name: str) -> str:
    return f"{config.prefix}-{stage_name}-platform"


def stage_team_stack_name(config: PlatformConfig, stage_name: str, team_name: str) -> str:
    return f"{config.prefix}-{stage_name}-team-{team_name}"


def stage_environments(config: PlatformConfig) -> dict[str, tuple[str, str]]:
    """(account, region) of every stage account's stack the config can build, by stack name."""
    environments = {}
    for stage in config.stages:
        environments[stage_platform_stack_name(config, stage.name)] = (stage.account, stage.region)
        for team in config.teams_in(stage):
            environments[stage_team_stack_name(config, stage.name, team.name)] = (stage.account, stage.region)
    return environments


@dataclass
class PlatformApp:
    app: cdk.App
    network: NetworkStack | None
    platform: PlatformStack
    teams: dict[str, TeamStack] = field(default_factory=dict)
    stages: dict[str, StagePlatformStack] = field(default_factory=dict)
    stage_teams: dict[tuple[str, str], StageTeamStack] = field(default_factory=dict)
    """By (stage name, team name)."""

    @property
    def stacks(self) -> list[cdk.Stack]:
        return [s for s in (self.network, self.platform, *self.teams.values(), *self.stages.values(),
                            *self.stage_teams.values()) if s is not None]


def _environment(config: PlatformConfig) -> cdk.Environment | None:
    if config.account is None and config.region is None:
        return None
    return cdk.Environment(account=config.account, region=config.region)


def _tag(scope: cdk.Stack | cdk.App, key: str, value: str) -> None:
    cdk.Tags.of(scope).add(key, value, exclude_resource_types=REPLACED_ON_TAG_CHANGE)


def _add_stages(config: PlatformConfig, app: cdk.App, result: PlatformApp, built: list) -> None:
    """Per stage its platform stack and, per built team serving in it, the team's stack, all in the stage's
    account and region (explicit, so synthesis looks nothing up)."""
    for stage in config.stages:
        env = cdk.Environment(account=stage.account, region=stage.region)
        platform = StagePlatformStack(
            app,
            stage_platform_stack_name(config, stage.name),
            config=config,
            stage=stage,
            env=env,
            description=f"{config.prefix} {stage.name}: platform key, alert topic and idle-endpoint teardown",
        )
        result.stages[stage.name] = platform
        for team in built:
            if stage not in config.stages_of(team):
                continue
            stack = StageTeamStack(
                app,
                stage_team_stack_name(config, stage.name, team.name),
                config=config,
                stage=stage,
                team=team,
                key=platform.key,
                access_log_bucket=platform.access_log_bucket,
                env=env,
                description=f"{config.prefix} {stage.name}: where team {team.name}'s versions serve",
            )
            result.stage_teams[(stage.name, team.name)] = stack


def selected_teams(config: PlatformConfig, selection: str | None) -> list[str] | None:
    """The team names of a ``-c teams=a,b`` selection, checked against the config; None selects every team."""
    if selection is None:
        return None
    names = [name.strip() for name in str(selection).split(",") if name.strip()]
    known = [team.name for team in config.teams]
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        shown = ", ".join(repr(name) for name in unknown) if unknown else repr(selection)
        raise ConfigError(
            f"-c teams: {shown} is not allowed: a comma-separated list of team names of the config ({', '.join(known)})"
        )
    return list(dict.fromkeys(names))


def build_platform(
    config: PlatformConfig,
    app: cdk.App | None = None,
    *,
    policy_gates: bool = True,
    teams: list[str] | None = None,
) -> PlatformApp:
    """Instantiate the stacks of `config` in `app` (a new one by default), with cdk-nag as a validation plugin.

    ``teams`` limits the team stacks to those names (the network and platform stacks are always built, from
    the whole config, so every built stack's template is the one a full synth makes).
    """
    app = app or cdk.App()
    env = _environment(config)

    network_stack = None
    if config.network.mode == "new":
        network_stack = NetworkStack(
            app,
            network_stack_name(config),
            network=config.network,
            env=env,
            description=f"{config.prefix}: VPC-only network for SageMaker Studio",
        )
        network = network_stack.refs
    else:
        network = existing_network_refs(config.network)

    platform = PlatformStack(
        app,
        platform_stack_name(config),
        config=config,
        network=network,
        env=env,
        description=f"{config.prefix}: platform key, Studio domain, quotas and idle-endpoint teardown",
    )
    result = PlatformApp(app=app, network=network_stack, platform=platform)
    built = [team for team in config.teams if teams is None or team.name in teams]
    for team in built:
        result.teams[team.name] = TeamStack(
            app,
            team_stack_name(config, team.name),
            config=config,
            team=team,
            key=platform.key,
            domain_id=cdk.Fn.import_value(domain_id_export_name(config.prefix)),
            access_log_bucket=platform.access_log_bucket,
            env=env,
            description=f"{config.prefix}: environment of team {team.name}",
        )
        result.teams[team.name].add_stack_dependency(platform, "imports the Studio domain id")
    _add_stages(config, app, result, built)

    _tag(app, tags.PLATFORM, config.prefix)
    _tag(app, tags.MANAGED_BY, tags.MANAGED_BY_VALUE)
    for key, value in config.tags.items():
        _tag(app, key, value)
    for team in built:
        stack = result.teams[team.name]
        _tag(stack, tags.TEAM, team.name)
        _tag(stack, tags.COST_CENTER, team.cost_center)
    for stage_name, stack in result.stages.items():
        _tag(stack, tags.STAGE, stage_name)
    for (stage_name, team_name), stack in result.stage_teams.items():
        _tag(stack, tags.STAGE, stage_name)
        _tag(stack, tags.TEAM, team_name)
        _tag(stack, tags.COST_CENTER, config.team(team_name).cost_center)

    for stack in result.stacks:
        acknowledge_findings(stack)
        apply_checkov_skips(stack)
    if policy_gates:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return result
