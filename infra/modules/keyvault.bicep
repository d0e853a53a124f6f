// Key Vault (RBAC mode) holding the SCIM bearer tokens, the app's own tokens, the Graph notification clientState, the events' signing key and push token. The template creates no secrets: the deploy
// tool (infra/deploy.py) generates the token and writes it, so a token never appears in a template,
// a parameter file or a deployment's history, and re-running a deployment never changes it.

@description('Globally unique vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

@description('Principal id of the app\'s managed identity (reads the tokens through Key Vault references).')
param principalId string

@description('Object id of whoever runs the deploy tool (writes and rotates the tokens). Empty: no assignment; grant Key Vault Secrets Officer yourself.')
param deployerPrincipalId string

@description('Principal type of deployerPrincipalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string

@description('Secret holding the primary SCIM bearer token (app setting SCIM_BEARER_TOKEN).')
param primarySecretName string

@description('Secret holding the second accepted token during a rotation (app setting SCIM_BEARER_TOKEN_SECONDARY).')
param secondarySecretName string

@description('Secret holding the line-of-business app\'s own token (app setting SCIM_APP_TOKEN).')
param appTokenSecretName string

@description('Secret holding the app\'s second accepted token during a rotation (app setting SCIM_APP_TOKEN_SECONDARY).')
param appTokenSecondarySecretName string

@description('Secret holding the clientState shared with Graph change notifications (app setting GRAPH_CLIENT_STATE).')
param graphClientStateSecretName string

@description('Secret holding the PEM private key that signs provisioning events (app setting SCIM_EVENTS_SIGNING_KEY; docs/events.md).')
param eventsSigningKeySecretName string

@description('Secret holding the bearer token the RFC 8935 push sends to the app\'s receiver (app setting SCIM_EVENTS_PUSH_TOKEN).')
param eventsPushTokenSecretName string

// Built-in role definition ids (the same in every tenant).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_42: Purge protection is off on purpose: the vault only holds the regenerable SCIM token, and teardown purges the vault so a customer can be redeployed under the same names. Soft delete (7 days) stays on.
  // checkov:skip=CKV_AZURE_110: Purge protection would block teardown + redeploy of a customer under the same vault name for the retention period; the vault only holds the regenerable SCIM token.
  // checkov:skip=CKV_AZURE_109: The vault must accept the App Service Key Vault reference resolver and the consultant's az CLI, neither of which has a fixed network; access is Entra RBAC only.
  // checkov:skip=CKV_AZURE_189: Public network access stays on for the App Service Key Vault reference resolver and the deployer's az CLI (no fixed networks); data access is Entra RBAC only.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Role: Key Vault Secrets User. The app resolves @Microsoft.KeyVault(...) app settings with its
// user-assigned identity (keyVaultReferenceIdentity).
resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

// Role: Key Vault Secrets Officer. The deployer writes the generated token and rotates it; in an
// RBAC vault even a subscription Owner cannot touch secrets without a data-plane role.
resource deployerSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
  }
}

output name string = vault.name
// Versionless secret URIs: the app picks up a new version on restart (the deploy tool restarts it).
output primarySecretUri string = '${vault.properties.vaultUri}secrets/${primarySecretName}'
output secondarySecretUri string = '${vault.properties.vaultUri}secrets/${secondarySecretName}'
output appTokenSecretUri string = '${vault.properties.vaultUri}secrets/${appTokenSecretName}'
output appTokenSecondarySecretUri string = '${vault.properties.vaultUri}secrets/${appTokenSecondarySecretName}'
output graphClientStateSecretUri string = '${vault.properties.vaultUri}secrets/${graphClientStateSecretName}'
output eventsSigningKeySecretUri string = '${vault.properties.vaultUri}secrets/${eventsSigningKeySecretName}'
output eventsPushTokenSecretUri string = '${vault.properties.vaultUri}secrets/${eventsPushTokenSecretName}'
