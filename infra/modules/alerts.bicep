// Alert rules of one instance: warn before Entra quarantines the provisioning job, and when the
// Graph enrichment keeps failing. Log search alerts on the instance's Application Insights
// (every SCIM call is one `requests` row; host.json samples traces, never requests).
//
// Entra's thresholds (Microsoft Learn, "Application provisioning in quarantine status",
// https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-quarantine-status):
// invalid credentials quarantine the job whatever the counts; otherwise quarantine is evaluated
// from 5,000 failures and applied above 40% failed provisioning events (or 40,000 failures).
// The rate alerts therefore fire at a fraction of 40% over an hour: the consultant hears of a
// broken instance hours (an initial cycle) or days (incremental cycles) before Entra acts.
//
// The static tokens never expire by design, so the token rule alerts on the time since the last
// rotation instead, from the age the app itself logs daily (scim_core/token_age.py).

@description('Application Insights component of the instance (the alerts query its requests and traces).')
param applicationInsightsName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Prefix of the rule names, e.g. scim-contoso.')
param namePrefix string

@description('Resource id of the action group that receives the alerts; empty: the rules fire without notifying anyone (visible in the portal).')
param actionGroupId string

@description('Alert when more than this share (percent) of the SCIM requests of the last hour answered 5xx. Entra quarantines above 40% failed events.')
@minValue(1)
@maxValue(40)
param serverErrorPercent int

@description('Alert when more than this share (percent) of the SCIM requests of the last hour answered 4xx (404 excluded: Entra reads deleted ids). Entra counts a rejected create or update as a failed event.')
@minValue(1)
@maxValue(40)
param clientErrorPercent int

@description('Rate alerts stay quiet below this many SCIM requests in the hour (a handful of calls is no rate).')
@minValue(1)
param minimumRequests int

@description('Alert when this many 401 answers arrive within 15 minutes: a wrong token quarantines the job at once.')
@minValue(1)
param authFailures int

@description('Alert when this many Graph sync runs in a row failed.')
@minValue(1)
@maxValue(20)
param graphSyncFailedRuns int

@description('Alert when a static token (Entra\'s or the app\'s, either slot) has been in place longer than this many days: the app logs each token\'s age once a day (scim_core/token_age.py).')
@minValue(1)
@maxValue(730)
param tokenMaxAgeDays int

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var actions = {
  actionGroups: empty(actionGroupId) ? [] : [
    actionGroupId
  ]
}

// Every SCIM call is a request below /scim/v2/ (function_app.py); Test Connection included.
var rateQuery = '''
requests
| where url has "/scim/v2/"
| summarize total = count(), matching = countif(CONDITION)
| where total >= MINIMUM and matching * 100.0 / total > PERCENT
'''

var rules = [
  {
    name: '${namePrefix}-scim-5xx-rate'
    displayName: 'SCIM server errors above ${serverErrorPercent}% (Entra quarantines above 40% failures)'
    severity: 1
    frequency: 'PT15M'
    window: 'PT1H'
    query: replace(replace(replace(rateQuery, 'CONDITION', 'toint(resultCode) >= 500'), 'MINIMUM', string(minimumRequests)), 'PERCENT', string(serverErrorPercent))
    dimensions: []
  }
  {
    name: '${namePrefix}-scim-4xx-rate'
    displayName: 'SCIM client errors above ${clientErrorPercent}% (Entra quarantines above 40% failures)'
    severity: 2
    frequency: 'PT15M'
    window: 'PT1H'
    query: replace(replace(replace(rateQuery, 'CONDITION', 'toint(resultCode) between (400 .. 499) and resultCode != "404"'), 'MINIMUM', string(minimumRequests)), 'PERCENT', string(clientErrorPercent))
    dimensions: []
  }
  {
    name: '${namePrefix}-scim-auth-failures'
    displayName: 'Entra\'s token is rejected (401): invalid credentials quarantine the job at once'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    query: 'requests | where url has "/scim/v2/" and resultCode == "401" | summarize rejected = count() | where rejected >= ${authFailures}'
    dimensions: []
  }
  {
    // graph_enrich/sync.py logs one line per run: "graph sync <outcome> (<reason>): ...".
    name: '${namePrefix}-graph-sync-failures'
    displayName: 'Graph sync failed ${graphSyncFailedRuns} runs in a row'
    severity: 2
    frequency: 'PT30M'
    window: 'P1D'
    query: 'traces | where message startswith "graph sync " and not(message startswith "graph sync skipped") | top ${graphSyncFailedRuns} by timestamp desc | summarize runs = count(), failed = countif(message startswith "graph sync failed") | where runs >= ${graphSyncFailedRuns} and failed == runs'
    dimensions: []
  }
  {
    // The tokens never expire, and a log search alert looks back at most two days, so the app
    // itself counts: the daily token_age timer (TOKEN_AGE_SCHEDULE, functionapp.bicep) logs
    // "token age <SLOT>: <n> days (first seen ...)" per configured token (scim_core/token_age.py).
    // The two-day window holds two daily runs, so one late or lost line does not blind the rule;
    // the latest line per slot counts, so a rotation clears the alert at the next run. One
    // alert per slot (dimension), so the notification names the token to rotate.
    name: '${namePrefix}-token-not-rotated'
    displayName: 'A SCIM token has not been rotated for more than ${tokenMaxAgeDays} days'
    severity: 3
    frequency: 'P1D'
    window: 'P2D'
    query: 'traces | where message startswith "token age " | parse-where message with "token age " slot ": " days:long " days" * | summarize arg_max(timestamp, days) by slot | where days > ${tokenMaxAgeDays}'
    dimensions: [
      {
        name: 'slot'
        operator: 'Include'
        values: [
          '*'
        ]
      }
    ]
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = [for rule in rules: {
  name: rule.name
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: 'See docs/deploy.md#alerts-and-the-workbook.'
    severity: rule.severity
    enabled: true
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    scopes: [
      applicationInsights.id
    ]
    criteria: {
      allOf: [
        {
          query: rule.query
          dimensions: rule.dimensions
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: actions
  }
}]

output ruleNames array = [for (rule, i) in rules: alertRules[i].name]
