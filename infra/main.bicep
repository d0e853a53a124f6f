// One isolated SCIM 2.0 endpoint for one customer tenant: Flex Consumption Function App over Table
// Storage, with its own identity, Key Vault, storage account and telemetry. Deploy into an empty
// resource group per customer (python -m infra.deploy deploy <customer> ...; see docs/deploy.md).
//
// Graph permissions for the identity are a separate template (graph-permissions.bicep) because
// granting them needs a privileged Entra administrator, not an Azure subscription role.

targetScope = 'resourceGroup'

// Bicep has no pattern decorator, so the character rule (lowercase letters, digits, inner hyphens)
// is checked before any deployment: by the deploy tool's argument parser and, for azd (whose
// environment name becomes customerName), by the preprovision hook in azure.yaml
// (python -m infra.deploy check-name). An underscore or upper-case letter would otherwise fail
// only at deploy time, as an invalid storage account or Key Vault name.
@description('Short customer name: 2-20 lowercase letters, digits and inner hyphens. Used in every resource name (storage account and Key Vault names allow no underscores).')
@minLength(2)
@maxLength(20)
param customerName string

@description('Azure region (Flex Consumption must be available there: az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Entra tenant whose users and groups the instance receives (the customer\'s tenant). It must be the tenant of this subscription for the managed identity to read Graph.')
param entraTenantId string = tenant().tenantId

@description('Object id of the person or pipeline that runs the deploy tool; it gets Key Vault Secrets Officer to write the token. Empty: grant that role yourself.')
param deployerPrincipalId string = ''

@description('Principal type of deployerPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Memory of each Function App instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// 40..1000: "The lowest maximum scale is currently 40. The highest currently supported value is
// 1000." (Microsoft Learn, "Azure Functions Flex Consumption plan hosting", Considerations,
// https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#considerations).
@description('Upper bound of Function App instances (Flex Consumption accepts 40 to 1000). Entra provisions at a modest rate and the store is one Table partition per resource type (~2,000 writes/s), so more instances do not buy throughput.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Always-ready instances for HTTP (0 = scale to zero; 1 removes cold starts for a monthly fee).')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int = 0

@description('Spread Function App instances over availability zones (Flex then keeps two always-ready instances, billed continuously). Forces zone-redundant storage: LRS becomes ZRS, GRS becomes GZRS.')
param zoneRedundant bool = false

@description('Storage replication. The store is a copy of what Entra provisions (a full cycle rebuilds it); choose GRS/GZRS for faster regional recovery.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@description('Days Log Analytics keeps the app\'s logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('TEST ONLY, default off: also accept Entra\'s own provisioning token ("blank Secret Token" mode) from entraTenantId (app setting SCIM_TEST_ONLY_ENTRA_TENANT_ID). Any enterprise app of that tenant can obtain such a token; Microsoft says it is for testing only.')
param acceptEntraProvisioningToken bool = false

@description('Scopes of the line-of-business app\'s static token (SCIM_APP_SCOPES): read, events, app:write, comma- or space-separated.')
param appScopes string = 'read'

@description('App-role mode: issuer of the app\'s Entra-issued JWTs (SCIM_APP_JWT_ISSUER), e.g. https://sts.windows.net/<tenant-id>/. Empty: off.')
param appJwtIssuer string = ''

@description('App-role mode: audience of the app\'s JWTs, the App ID URI of the endpoint\'s app registration (SCIM_APP_JWT_AUDIENCE; output appIdUri of app-roles.bicep).')
param appJwtAudience string = ''

@description('App-role mode: the tenant\'s signing keys (SCIM_APP_JWKS_URL), https://login.microsoftonline.com/<tenant-id>/discovery/v2.0/keys.')
param appJwksUrl string = ''

@description('Attributes of the app-owned extension urn:scimfunc:schemas:extension:app:1.0:User (SCIM_APP_EXTENSION_ATTRIBUTES): a JSON list of RFC 7643 attribute definitions. Empty: none.')
param appExtensionAttributes string = ''

@description('OAuth mode: issuer a bearer JWT must carry (SCIM_JWT_ISSUER). Empty: off.')
param jwtIssuer string = ''

@description('OAuth mode: audience a bearer JWT must carry (SCIM_JWT_AUDIENCE).')
param jwtAudience string = ''

@description('OAuth mode: JWKS URL of the accepted signing keys (SCIM_JWKS_URL).')
param jwksUrl string = ''

@description('NCRONTAB schedule (UTC) of the Graph delta sync timer (SYNC_SCHEDULE).')
param syncSchedule string = '0 */15 * * * *'

@description('Microsoft Graph base URL (GRAPH_BASE_URL); change for national clouds.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Extra Graph user properties to enrich with, comma-separated (GRAPH_SELECT). Empty: the app\'s default.')
param graphSelect string = ''

@description('How synced Graph users are matched to SCIM users (GRAPH_JOIN).')
param graphJoin string = 'externalId'

@description('What the sync does with users deleted in Entra (GRAPH_DEPROVISION).')
param graphDeprovision string = 'flag'

@description('Public URL for Graph change notifications (GRAPH_NOTIFICATION_URL). Empty: polling only.')
param graphNotificationUrl string = ''

@description('App-extension attributes written back to Entra through Graph (GRAPH_WRITEBACK), comma-separated appAttribute=graphProperty pairs, docs/graph-writeback.md. Empty: off. Needs graph-permissions.bicep with grantUserReadWriteAll=true.')
param graphWriteback string = ''

// Alerts (modules/alerts.bicep; thresholds relative to Entra's quarantine rule, docs/deploy.md).
@description('Resource id of an action group that receives the alerts (e.g. the consultant\'s on-call group, in any subscription); empty: alerts show in the portal only.')
param alertActionGroupId string = ''

@description('Alert above this share (percent) of 5xx SCIM answers in an hour; Entra quarantines above 40% failures.')
@minValue(1)
@maxValue(40)
param alertServerErrorPercent int = 10

@description('Alert above this share (percent) of 4xx SCIM answers (404 excluded) in an hour.')
@minValue(1)
@maxValue(40)
param alertClientErrorPercent int = 20

@description('The rate alerts stay quiet below this many SCIM requests in an hour.')
@minValue(1)
param alertMinimumRequests int = 20

@description('Alert when this many 401 answers arrive within 15 minutes.')
@minValue(1)
param alertAuthFailures int = 5

@description('Alert when this many Graph sync runs in a row failed.')
@minValue(1)
@maxValue(20)
param alertGraphSyncFailedRuns int = 3

@description('Alert when a static token (Entra\'s or the app\'s) has not been rotated for more than this many days (the app logs each token\'s age daily).')
@minValue(1)
@maxValue(730)
param alertTokenMaxAgeDays int = 180

// --- provisioning events for the app (docs/events.md) ---
@description('SCIM_EVENTS: off, notice (what changed) or full (the resource in each event).')
@allowed(['off', 'notice', 'full'])
param events string = 'off'

@description('SCIM_EVENTS_UNSIGNED: true sends unsecured SETs (only for a receiver reached over an authenticated channel; docs/events.md, "Signed or not"). False signs them with the key the deploy tool keeps in Key Vault.')
param eventsUnsigned bool = false

@description('SCIM_EVENTS_ISSUER: the SETs\' iss; set it to the tenant URL (empty: urn:scimfunc:events).')
param eventsIssuer string = ''

@description('SCIM_EVENTS_AUDIENCE: the SETs\' aud, naming the app that receives them (empty: none).')
param eventsAudience string = ''

@description('SCIM_EVENTS_RETENTION_DAYS: days an unacknowledged event is kept.')
@minValue(1)
@maxValue(3650)
param eventsRetentionDays int = 7

@description('SCIM_EVENTS_PUSH_URL: the app\'s RFC 8935 receiver (https), or empty for poll only. The push\'s bearer token is generated into Key Vault by the deploy tool.')
param eventsPushUrl string = ''

// Names. Resource-group-scoped names are readable; globally unique ones get a stable suffix.
var suffix = uniqueString(resourceGroup().id)
var compactName = toLower(replace(customerName, '-', ''))
var tags = {
  'scim-customer': customerName
  // infra/instances.py: `list` finds the function apps of instances whose group it did not tag (azd).
  'scim-product': 'scim-func'
}
var identityName = 'id-scim-${customerName}'
var storageAccountName = 'st${take(compactName, 9)}${suffix}'
var keyVaultName = 'kv-${take(compactName, 7)}-${suffix}'
var functionAppName = 'func-scim-${customerName}-${suffix}'
var planName = 'plan-scim-${customerName}'
var logAnalyticsName = 'log-scim-${customerName}'
var applicationInsightsName = 'appi-scim-${customerName}'
var deploymentContainerName = 'app-package'
var primarySecretName = 'scim-bearer-token'
var secondarySecretName = 'scim-bearer-token-secondary'
// GRAPH_CLIENT_STATE is a Key Vault reference like the bearer tokens; the deploy tool generates
// the value (never a template parameter, so it is in no parameter file or deployment history).
var graphClientStateSecretName = 'graph-client-state'
// The line-of-business app's own tokens (SCIM_APP_TOKEN[_SECONDARY]), generated by the deploy
// tool like Entra's and kept apart from them.
var appTokenSecretName = 'scim-app-token'
var appTokenSecondarySecretName = 'scim-app-token-secondary'
// The events' signing key (a P-256 PEM) and the push's bearer token, generated by the deploy tool
// (infra/deploy.py) into Key Vault; referenced only when events are on (and signed) or push is.
var eventsSigningKeySecretName = 'scim-events-signing-key'
var eventsPushTokenSecretName = 'scim-events-push-token'

// A zone-redundant Flex Consumption app needs zone-redundant host storage (Microsoft Learn,
// "Reliability in Azure Functions", https://learn.microsoft.com/azure/reliability/reliability-functions,
// and "Configure zone redundancy in Azure Functions",
// https://learn.microsoft.com/azure/azure-functions/functions-zone-redundancy): with zoneRedundant
// on, each allowed SKU maps to its zone-redundant counterpart, keeping geo-replication if chosen.
var zoneRedundantSkus = {
  Standard_LRS: 'Standard_ZRS'
  Standard_ZRS: 'Standard_ZRS'
  Standard_GRS: 'Standard_GZRS'
  Standard_GZRS: 'Standard_GZRS'
}
var hostStorageSkuName = zoneRedundant ? zoneRedundantSkus[storageSkuName] : storageSkuName

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: identityName
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: hostStorageSkuName
    deploymentContainerName: deploymentContainerName
    principalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: logAnalyticsName
    applicationInsightsName: applicationInsightsName
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: keyVaultName
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    primarySecretName: primarySecretName
    secondarySecretName: secondarySecretName
    graphClientStateSecretName: graphClientStateSecretName
    appTokenSecretName: appTokenSecretName
    appTokenSecondarySecretName: appTokenSecondarySecretName
    eventsSigningKeySecretName: eventsSigningKeySecretName
    eventsPushTokenSecretName: eventsPushTokenSecretName
  }
}

// Consumes outputs of every module above, so it deploys after their role assignments exist.
module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: functionAppName
    planName: planName
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    tableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    primarySecretUri: keyVault.outputs.primarySecretUri
    secondarySecretUri: keyVault.outputs.secondarySecretUri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    zoneRedundant: zoneRedundant
    jwtIssuer: jwtIssuer
    jwtAudience: jwtAudience
    jwksUrl: jwksUrl
    entraProvisioningTenantId: acceptEntraProvisioningToken ? entraTenantId : ''
    syncSchedule: syncSchedule
    graphBaseUrl: graphBaseUrl
    graphTenantId: entraTenantId
    graphSelect: graphSelect
    graphJoin: graphJoin
    graphDeprovision: graphDeprovision
    graphNotificationUrl: graphNotificationUrl
    graphWriteback: graphWriteback
    graphClientStateSecretUri: keyVault.outputs.graphClientStateSecretUri
    appTokenSecretUri: keyVault.outputs.appTokenSecretUri
    appTokenSecondarySecretUri: keyVault.outputs.appTokenSecondarySecretUri
    appScopes: appScopes
    appJwtIssuer: appJwtIssuer
    appJwtAudience: appJwtAudience
    appJwksUrl: appJwksUrl
    appExtensionAttributes: appExtensionAttributes
    events: events
    eventsSigningKeySecretUri: events != 'off' && !eventsUnsigned ? keyVault.outputs.eventsSigningKeySecretUri : ''
    eventsUnsigned: eventsUnsigned
    eventsIssuer: empty(eventsIssuer) ? 'urn:scimfunc:events' : eventsIssuer
    eventsAudience: eventsAudience
    eventsRetentionDays: eventsRetentionDays
    eventsPushUrl: eventsPushUrl
    eventsPushTokenSecretUri: empty(eventsPushUrl) ? '' : keyVault.outputs.eventsPushTokenSecretUri
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    namePrefix: 'scim-${customerName}'
    actionGroupId: alertActionGroupId
    serverErrorPercent: alertServerErrorPercent
    clientErrorPercent: alertClientErrorPercent
    minimumRequests: alertMinimumRequests
    authFailures: alertAuthFailures
    graphSyncFailedRuns: alertGraphSyncFailedRuns
    tokenMaxAgeDays: alertTokenMaxAgeDays
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    customerName: customerName
  }
}

@description('Paste into Entra: Provisioning > Admin Credentials > Tenant URL.')
output scimTenantUrl string = 'https://${functionApp.outputs.defaultHostName}/scim/v2'
output functionAppName string = functionApp.outputs.name
output keyVaultName string = keyVault.outputs.name
output secretName string = primarySecretName
output secondarySecretName string = secondarySecretName
output graphClientStateSecretName string = graphClientStateSecretName
output appTokenSecretName string = appTokenSecretName
output eventsSigningKeySecretName string = eventsSigningKeySecretName
output eventsPushTokenSecretName string = eventsPushTokenSecretName
output managedIdentityName string = identity.outputs.name
output managedIdentityPrincipalId string = identity.outputs.principalId
output storageAccountName string = storage.outputs.name
output applicationInsightsName string = monitoring.outputs.applicationInsightsName
output workbookId string = workbook.outputs.workbookId
output alertRuleNames array = alerts.outputs.ruleNames
