// Storage account of one customer instance: the SCIM store (tables), the Functions host storage and
// the Flex Consumption deployment container. Keys are disabled: everything authenticates with the
// managed identity (Entra ID), so there is no connection string to leak or rotate.

@description('Globally unique storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Replication. The store is a copy of what Entra provisions, so a lost account is rebuilt by a full provisioning cycle; ZRS survives a zone outage without that.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string

@description('Blob container that holds the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Principal id of the app\'s managed identity.')
param principalId string

// The store's tables (scim_core's Table storage layout, see shared design notes):
// users (users + their index rows), groups (groups, index and membership rows), state (Graph delta links).
var tableNames = [
  'users'
  'groups'
  'state'
]

// Built-in role definition ids (the same in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its host storage, deployment container and tables over the public endpoint; a deny-by-default firewall would cut the app off. Access is Entra-only (shared keys disabled) and limited by role assignments.
  // checkov:skip=CKV_AZURE_59: Public network access stays on because Flex Consumption without VNet integration reaches storage over the public endpoint; shared keys are off, so every request needs an Entra token with a role on this account.
  // checkov:skip=CKV_AZURE_206: Replication is the skuName parameter. The store is a copy of what Entra provisions and a full provisioning cycle rebuilds it, so LRS is the cost-conscious default; pick GRS/GZRS per customer in the .bicepparam.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

// Role: Storage Blob Data Owner. The Functions host keeps its leases (timer singleton) and keys in
// blobs, and Flex Consumption reads and writes the deployment package in the container above.
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
  }
}

// Role: Storage Table Data Contributor. The SCIM store (users, groups, state) and the host's
// diagnostic-events table. Account scope, because the host creates its own table.
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}

// No Storage Queue Data Contributor: the app has HTTP and timer triggers only, and neither uses queues.

output name string = storage.name
output tableEndpoint string = 'https://${storage.name}.table.${environment().suffixes.storage}'
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer.name}'
