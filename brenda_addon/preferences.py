# SPDX-License-Identifier: GPL-3.0-or-later
"""Brenda's add-on preferences: where the farm lives. They are the add-on's own: it reads neither
``~/.brenda.conf`` nor ``BRENDA_*`` variables, which are the command line's. Secret keys are
never stored here (nor in the .blend): AWS credentials come from the standard chain (profile,
SSO, environment)."""

from __future__ import annotations

from typing import cast

import bpy


class BRENDA_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    profile: bpy.props.StringProperty(name="AWS Profile", description="Profile in ~/.aws/config")
    region: bpy.props.StringProperty(name="Region", description="AWS region, like us-east-1")
    endpoint_url: bpy.props.StringProperty(
        name="Endpoint URL", description="Another AWS-compatible endpoint (leave empty for AWS)"
    )
    project_bucket: bpy.props.StringProperty(
        name="Project Bucket", description="S3 bucket the packed project is uploaded to"
    )
    output_bucket: bpy.props.StringProperty(
        name="Output Bucket", description="S3 bucket the nodes store frames in"
    )
    farm: bpy.props.StringProperty(
        name="Farm",
        default="brenda",
        description="Farm name: its nodes render every job of the farm, each job from a queue "
        "of its own (<farm>-job-<id>)",
    )
    instance_type: bpy.props.StringProperty(name="Instance Type", default="c7i.2xlarge")
    ami: bpy.props.StringProperty(name="Node Image (AMI)")
    key_name: bpy.props.StringProperty(name="Key Pair", default="brenda")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        for name in ("profile", "region", "endpoint_url"):
            layout.prop(self, name)
        layout.separator()
        for name in ("project_bucket", "output_bucket", "farm"):
            layout.prop(self, name)
        layout.separator()
        for name in ("instance_type", "ami", "key_name"):
            layout.prop(self, name)


def preferences(context: bpy.types.Context) -> BRENDA_AP_preferences:
    return cast(BRENDA_AP_preferences, context.preferences.addons[__package__].preferences)


classes = (BRENDA_AP_preferences,)
register, unregister = bpy.utils.register_classes_factory(classes)
