// Evaluates IAM requests with @cloud-copilot/iam-simulate (pinned in package.json), for the Python tests.
//
// stdin:  {"cases": [{"identityPolicies": [{"name", "policy"}], "resourcePolicy": {...} | null,
//                     "request": {"principal", "action", "resource": {"resource", "accountId"},
//                                 "contextVariables": {...}}}]}
// stdout: [{"overall": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | null,
//           "identity": <the identity policies' own result> | null, "errors": <validation errors> | null}]
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const { cases } = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const results = []
for (const c of cases) {
  const simulation = {
    identityPolicies: c.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: c.request
  }
  if (c.resourcePolicy) simulation.resourcePolicy = c.resourcePolicy
  const response = await runSimulation(simulation, {})
  if (response.errors) {
    results.push({ overall: null, identity: null, errors: response.errors })
    continue
  }
  const analysis = response.result?.analysis
  results.push({
    overall: analysis?.result ?? response.overallResult ?? null,
    identity: analysis?.identityAnalysis?.result ?? null,
    errors: null
  })
}
process.stdout.write(JSON.stringify(results))
