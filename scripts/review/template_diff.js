#!/usr/bin/env node
// The CDK toolkit's own template diff (@aws-cdk/cloudformation-diff, as `cdk diff` uses it),
// as JSON: no AWS call, no hand-written comparison. Reads on stdin
//   [{"stack": "<name>", "old": "<template path or null>", "new": "<template path or null>"}]
// and prints {"<stack>": {"resources": [...], "iam": {...}, "text": "<cdk diff's own text>"}}.
// AWS::CDK::Metadata and the bootstrap-version rule are left out, as `cdk diff` does by
// default (its --strict flag keeps them).
'use strict';
const fs = require('node:fs');
const { Writable } = require('node:stream');
const cfnDiff = require('@aws-cdk/cloudformation-diff');

function read(path) {
  return path ? JSON.parse(fs.readFileSync(path, 'utf-8')) : {};
}

function obscure(diff) {
  diff.resources = diff.resources.filter(
    (change) => !change || (change.newResourceType !== 'AWS::CDK::Metadata'
      && change.oldResourceType !== 'AWS::CDK::Metadata'));
  diff.unknown = diff.unknown.filter(
    (change) => !change || !(change.newValue?.CheckBootstrapVersion
      || change.oldValue?.CheckBootstrapVersion));
}

function kind(change) {
  if (change.isAddition) return 'added';
  if (change.isRemoval) return 'removed';
  return 'modified';
}

function text(diff, template) {
  const chunks = [];
  const stream = new Writable({
    write(chunk, _encoding, done) { chunks.push(chunk.toString()); done(); },
  });
  const paths = {};
  for (const [id, resource] of Object.entries(template.Resources ?? {})) {
    const path = resource?.Metadata?.['aws:cdk:path'];
    if (path) paths[id] = path;
  }
  cfnDiff.formatDifferences(stream, diff, paths);
  // No colour: the report is markdown.
  return chunks.join('').replace(/\x1b\[[0-9;]*m/g, '');
}

function statement(rendered) {
  return {
    resource: rendered.resource, effect: rendered.effect, action: rendered.action,
    principal: rendered.principal, condition: rendered.condition,
  };
}

function describe(entry) {
  const oldTemplate = read(entry.old);
  const newTemplate = read(entry.new);
  const diff = cfnDiff.fullDiff(oldTemplate, newTemplate);
  obscure(diff);
  const resources = [];
  diff.resources.forEachDifference((logicalId, change) => {
    const template = change.isRemoval ? oldTemplate : newTemplate;
    const properties = [];
    for (const [name, property] of Object.entries(change.propertyUpdates ?? {})) {
      properties.push({ name, impact: property.changeImpact ?? null });
    }
    resources.push({
      logical_id: logicalId,
      path: template.Resources?.[logicalId]?.Metadata?.['aws:cdk:path'] ?? null,
      type: change.newResourceType ?? change.oldResourceType,
      change: kind(change),
      impact: change.changeImpact,
      properties,
    });
  });
  const iam = diff.iamChanges;
  return {
    resources,
    iam: {
      broadened: diff.permissionsBroadened,
      statements_added: iam.statements.additions.map((s) => statement(s.render())),
      statements_removed: iam.statements.removals.map((s) => statement(s.render())),
      managed_policies_added: iam.managedPolicies.additions.map((p) => p.managedPolicyArn),
      managed_policies_removed: iam.managedPolicies.removals.map((p) => p.managedPolicyArn),
    },
    text: diff.isEmpty ? '' : text(diff, newTemplate),
  };
}

const entries = JSON.parse(fs.readFileSync(0, 'utf-8'));
const out = {};
for (const entry of entries) out[entry.stack] = describe(entry);
process.stdout.write(JSON.stringify(out));
