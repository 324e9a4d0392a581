#!/usr/bin/env python3
"""The synth floor: the same CLI, Python, jsii runtime and feature flags as the platform app, one empty stack.

``bench/synth_bench.py`` times ``cdk synth`` of this app against the platform app. No cdk-nag, no config,
no constructs: whatever the platform app costs above this is the cost of what it builds and checks.
"""

from __future__ import annotations

from aws_cdk import App, Stack

app = App()
Stack(app, "Floor")
app.synth()
