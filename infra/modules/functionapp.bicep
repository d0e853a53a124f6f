// Flex Consumption (FC1) plan and the Function App that serves SCIM. Identity everywhere: host
// storage, tables, Key Vault references and App Insights all use the user-assigned identity.

@description('Function App name (globally unique host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity.')
param identityClientId string

@description('Storage account for the host, the tables and the deployment package.')
param storageAccountName string

@description('Table endpoint, https://<account>.table.core.windows.net.')
param tableEndpoint string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

@description('Application Insights connection string (not a secret: local auth is disabled).')
param applicationInsightsConnectionString string

@description('Versionless Key Vault URI of the primary bearer token secret.')
param primarySecretUri string

@description('Versionless Key Vault URI of the secondary bearer token secret.')
param secondarySecretUri string

@description('Versionless Key Vault URI of the line-of-business app\'s token secret.')
param appTokenSecretUri string

@description('Versionless Key Vault URI of the app\'s secondary token secret (rotation).')
param appTokenSecondarySecretUri string

@description('Versionless Key Vault URI of the Graph notification clientState secret.')
param graphClientStateSecretUri string

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Upper bound of instances the app scales out to (Flex Consumption: 40 to 1000, see main.bicep).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Spread instances over availability zones. Flex then keeps at least two always-ready instances (billed continuously).')
param zoneRedundant bool

@description('Always-ready instances for the http trigger group (0 = scale to zero, pay per use).')
@minValue(0)
param alwaysReadyHttpInstances int

// --- values of the app's own settings (scim_core/settings.py) ---------------------------------
param jwtIssuer string
param jwtAudience string
param jwksUrl string
param entraProvisioningTenantId string
param appScopes string
param appJwtIssuer string
param appJwtAudience string
param appJwksUrl string
param appExtensionAttributes string
param syncSchedule string
param graphBaseUrl string
param graphTenantId string
param graphSelect string
param graphJoin string
param graphDeprovision string
param graphNotificationUrl string
param graphWriteback string

// --- provisioning events (docs/events.md) ---
@description('SCIM_EVENTS: off, notice or full.')
@allowed(['off', 'notice', 'full'])
param events string = 'off'
@description('Key Vault secret URI of the PEM key that signs the SETs (SCIM_EVENTS_SIGNING_KEY); empty: none.')
param eventsSigningKeySecretUri string = ''
@description('SCIM_EVENTS_UNSIGNED: true sends unsecured SETs (only over an authenticated channel).')
param eventsUnsigned bool = false
@description('SCIM_EVENTS_ISSUER: the SETs\' iss (set it to the tenant URL).')
param eventsIssuer string = 'urn:scimfunc:events'
@description('SCIM_EVENTS_AUDIENCE: the SETs\' aud (the receiver), or empty.')
param eventsAudience string = ''
@description('SCIM_EVENTS_RETENTION_DAYS: days an unacknowledged event is kept.')
param eventsRetentionDays int = 7
@description('SCIM_EVENTS_PUSH_URL: RFC 8935 push receiver (https), or empty for poll only.')
param eventsPushUrl string = ''
@description('Key Vault secret URI of the bearer token the push sends (SCIM_EVENTS_PUSH_TOKEN); empty: none.')
param eventsPushTokenSecretUri string = ''

var alwaysReady = alwaysReadyHttpInstances > 0 ? [
  {
    name: 'http'
    instanceCount: alwaysReadyHttpInstances
  }
] : []

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy makes Flex keep two always-ready instances billed around the clock; it is the zoneRedundant parameter (default off). Entra retries failed provisioning requests, so a zonal outage delays provisioning rather than losing changes.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

// App settings: exactly the settings scim_core/settings.py reads (Settings.setting_names()) plus
// the Functions platform's own; tests/infra/test_app_settings.py keeps the three lists in step.
// Left out on purpose, because Azure authenticates with the managed identity instead:
//   TABLES_CONNECTION_STRING  - Azurite / local development only (shared keys are disabled here).
//   GRAPH_CLIENT_ID           - client-credentials Graph auth for running the sync outside Azure;
//   GRAPH_CLIENT_SECRET         in Azure the sync uses the identity in AZURE_CLIENT_ID.
// Not set either: FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION (Flex Consumption rejects
// them; functionAppConfig.runtime replaces them).
// Host storage is named by service URI, built from the cloud's own storage suffix, as the official
// Flex sample does (Azure-Samples/functions-quickstart-python-http-azd, infra/app/api.bicep).
// AzureWebJobsStorage__accountName would be shorter but is "valid only if the account isn't in a
// sovereign cloud and doesn't have a custom DNS" (Microsoft Learn, "Azure Functions developer
// guide", Connecting to host storage with an identity,
// https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity),
// and the templates already support national Graph endpoints. The queue URI costs nothing and
// keeps the connection complete; no queue role is granted because no trigger uses queues.
// SCIM_APP_TOKEN and SCIM_APP_TOKEN_SECONDARY (the line-of-business app's own credential,
// docs/app-guide.md) are Key Vault references too, in secrets of their own: rotating Entra's token
// never touches the app's, and the reverse.
// GRAPH_CLIENT_STATE is a Key Vault reference like the bearer tokens: a plain app setting is
// readable by anyone who may list the app's settings.
// siteConfig sets no ftpsState: it is deprecated on Flex Consumption, "FTPS not supported"
// (Microsoft Learn, "App settings reference for Azure Functions", Flex Consumption plan
// deprecations, https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations),
// and neither is any other property on that list (alwaysOn, use32BitWorkerProcess,
// linuxFxVersion, functionAppScaleLimit, preWarmedInstanceCount, ...).
resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Entra's provisioning service cannot present client certificates.
  // checkov:skip=CKV_AZURE_222: Entra's provisioning service calls the SCIM endpoint over the internet; requests are authenticated by the app (bearer token).
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales on demand; always-ready instances are billed around the clock, so they are a parameter (alwaysReadyHttpInstances) defaulting to 0.
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the App Service health check feature; the platform replaces unhealthy instances.
  // checkov:skip=CKV_AZURE_78: siteConfig.ftpsState is deprecated on Flex Consumption ("FTPS not supported", Learn: App settings reference for Azure Functions, Flex Consumption plan deprecations), so it is not set; FTP publishing is off through the ftp basicPublishingCredentialsPolicies resource below.
  name: name
  location: location
  // azd finds the app to deploy `api` into by this tag (azure.yaml).
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      appSettings: [
        // --- Functions platform (host storage by service URI: see the comment above) ---
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: 'https://${storageAccountName}.blob.${environment().suffixes.storage}'
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: 'https://${storageAccountName}.queue.${environment().suffixes.storage}'
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: 'https://${storageAccountName}.table.${environment().suffixes.storage}'
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // --- authentication ---
        {
          name: 'SCIM_BEARER_TOKEN'
          value: '@Microsoft.KeyVault(SecretUri=${primarySecretUri})'
        }
        {
          name: 'SCIM_BEARER_TOKEN_SECONDARY'
          value: '@Microsoft.KeyVault(SecretUri=${secondarySecretUri})'
        }
        {
          name: 'SCIM_JWT_ISSUER'
          value: jwtIssuer
        }
        {
          name: 'SCIM_JWT_AUDIENCE'
          value: jwtAudience
        }
        {
          name: 'SCIM_JWKS_URL'
          value: jwksUrl
        }
        {
          name: 'SCIM_TEST_ONLY_ENTRA_TENANT_ID'
          value: entraProvisioningTenantId
        }
        // --- the line-of-business app's own credentials (docs/app-guide.md) ---
        {
          name: 'SCIM_APP_TOKEN'
          value: '@Microsoft.KeyVault(SecretUri=${appTokenSecretUri})'
        }
        {
          name: 'SCIM_APP_TOKEN_SECONDARY'
          value: '@Microsoft.KeyVault(SecretUri=${appTokenSecondarySecretUri})'
        }
        {
          name: 'SCIM_APP_SCOPES'
          value: appScopes
        }
        {
          name: 'SCIM_APP_JWT_ISSUER'
          value: appJwtIssuer
        }
        {
          name: 'SCIM_APP_JWT_AUDIENCE'
          value: appJwtAudience
        }
        {
          name: 'SCIM_APP_JWKS_URL'
          value: appJwksUrl
        }
        {
          name: 'SCIM_APP_EXTENSION_ATTRIBUTES'
          value: appExtensionAttributes
        }
        // --- provisioning events (docs/events.md) ---
        {
          name: 'SCIM_EVENTS'
          value: events
        }
        {
          name: 'SCIM_EVENTS_SIGNING_KEY'
          value: empty(eventsSigningKeySecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${eventsSigningKeySecretUri})'
        }
        {
          name: 'SCIM_EVENTS_SIGNING_KID'
          value: ''
        }
        {
          name: 'SCIM_EVENTS_UNSIGNED'
          value: eventsUnsigned ? 'true' : 'false'
        }
        {
          name: 'SCIM_EVENTS_ISSUER'
          value: eventsIssuer
        }
        {
          name: 'SCIM_EVENTS_AUDIENCE'
          value: eventsAudience
        }
        {
          name: 'SCIM_EVENTS_RETENTION_DAYS'
          value: string(eventsRetentionDays)
        }
        {
          name: 'SCIM_EVENTS_RETENTION_SCHEDULE'
          value: '0 45 4 * * *'
        }
        {
          name: 'SCIM_EVENTS_POLL_WAIT_SECONDS'
          value: '20'
        }
        {
          name: 'SCIM_EVENTS_PUSH_URL'
          value: eventsPushUrl
        }
        {
          name: 'SCIM_EVENTS_PUSH_TOKEN'
          value: empty(eventsPushTokenSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${eventsPushTokenSecretUri})'
        }
        {
          name: 'SCIM_EVENTS_PUSH_SCHEDULE'
          value: '0 */1 * * * *'
        }
        {
          name: 'SCIM_EVENTS_PUSH_GIVE_UP_HOURS'
          value: '24'
        }
        // --- storage ---
        {
          name: 'TABLES_ENDPOINT'
          value: tableEndpoint
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'STORAGE_TIMEOUT_SECONDS'
          value: '5'
        }
        {
          // User attributes indexed for eq lookups. After changing it on an instance with users,
          // run `python -m scim_core.reindex --endpoint <table endpoint>` once (README, Indexes).
          name: 'SCIM_INDEXED_ATTRIBUTES'
          value: 'emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber'
        }
        // Daily, fixed: the "token not rotated" alert (alerts.bicep) reads the latest line of the
        // last two days, so a less frequent schedule would leave it blind.
        {
          name: 'TOKEN_AGE_SCHEDULE'
          value: '0 30 5 * * *'
        }
        // --- Graph enrichment ---
        {
          name: 'SYNC_SCHEDULE'
          value: syncSchedule
        }
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'GRAPH_TENANT_ID'
          value: graphTenantId
        }
        {
          name: 'GRAPH_SELECT'
          value: graphSelect
        }
        {
          name: 'GRAPH_JOIN'
          value: graphJoin
        }
        {
          name: 'GRAPH_DEPROVISION'
          value: graphDeprovision
        }
        {
          name: 'GRAPH_NOTIFICATION_URL'
          value: graphNotificationUrl
        }
        {
          name: 'GRAPH_WRITEBACK'
          value: graphWriteback
        }
        // A Key Vault reference, like the tokens (the deploy tool generates the secret).
        {
          name: 'GRAPH_CLIENT_STATE'
          value: '@Microsoft.KeyVault(SecretUri=${graphClientStateSecretUri})'
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReady
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// Basic (user name + password) publishing is off: deployments authenticate with Entra ID.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
