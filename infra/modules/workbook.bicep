// An Azure Monitor workbook per instance over its Application Insights: SCIM request rate, error
// rate, latency, and the Graph sync runs. `python -m infra.deploy status --all` links it.

@description('Application Insights component the workbook reads.')
param applicationInsightsName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Customer name, shown in the title.')
param customerName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var scim = 'requests | where url has "/scim/v2/"'

// One KQL tile per chart (the workbook JSON schema's KqlItem/1.0 over an App Insights resource).
var tiles = [
  {
    title: 'SCIM requests per 5 minutes, by status class'
    query: '${scim} | summarize requests = count() by bin(timestamp, 5m), status = strcat(substring(resultCode, 0, 1), "xx") | render timechart'
    visualization: 'timechart'
  }
  {
    title: 'SCIM error rate (%), 4xx without 404 and 5xx (Entra quarantines above 40% failures)'
    query: '${scim} | summarize total = count(), client = countif(toint(resultCode) between (400 .. 499) and resultCode != "404"), server = countif(toint(resultCode) >= 500) by bin(timestamp, 15m) | project timestamp, client_pct = 100.0 * client / total, server_pct = 100.0 * server / total | render timechart'
    visualization: 'timechart'
  }
  {
    title: 'SCIM latency (ms): p50, p95, p99 (Entra gives up after 60 s)'
    query: '${scim} | summarize p50 = percentile(duration, 50), p95 = percentile(duration, 95), p99 = percentile(duration, 99) by bin(timestamp, 15m) | render timechart'
    visualization: 'timechart'
  }
  {
    title: 'SCIM requests by route and status (last period)'
    query: '${scim} | summarize requests = count(), p95_ms = percentile(duration, 95) by name, resultCode | order by requests desc'
    visualization: 'table'
  }
  {
    title: 'Graph sync runs'
    query: 'traces | where message startswith "graph sync " | extend outcome = extract(@"^graph sync (\\w+)", 1, message) | summarize runs = count() by bin(timestamp, 1h), outcome | render columnchart'
    visualization: 'barchart'
  }
  {
    title: 'Graph sync: last runs'
    query: 'traces | where message startswith "graph sync " | project timestamp, severityLevel, message | order by timestamp desc | take 50'
    visualization: 'table'
  }
]

var tileItems = [for (tile, i) in tiles: {
  type: 3
  content: {
    version: 'KqlItem/1.0'
    query: tile.query
    size: 0
    title: tile.title
    timeContextFromParameter: 'TimeRange'
    queryType: 0
    resourceType: 'microsoft.insights/components'
    visualization: tile.visualization
  }
  name: 'tile-${i}'
}]

var content = {
  version: 'Notebook/1.0'
  items: concat([
    {
      type: 1
      content: {
        json: '## SCIM endpoint: ${customerName}\nEvery SCIM call from Entra is one request. Alert rules: docs/deploy.md#alerts-and-the-workbook.'
      }
      name: 'title'
    }
    {
      type: 9
      content: {
        version: 'KqlParameterItem/1.0'
        parameters: [
          {
            id: 'time-range'
            version: 'KqlParameterItem/1.0'
            name: 'TimeRange'
            type: 4
            value: {
              durationMs: 86400000
            }
            typeSettings: {
              allowCustom: true
            }
          }
        ]
      }
      name: 'parameters'
    }
  ], tileItems)
  isLocked: false
  fallbackResourceIds: [
    applicationInsights.id
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // Workbook names are GUIDs; derived from the component so redeploys update the same one.
  name: guid(applicationInsights.id, 'scim-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'SCIM endpoint - ${customerName}'
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string(content)
  }
}

output workbookId string = workbook.id
