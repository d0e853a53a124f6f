// The customer instance's user-assigned managed identity. One identity does everything the app
// needs (host storage, tables, Key Vault references, App Insights, Graph), so there is one principal
// to grant roles to and one client id in the app settings (AZURE_CLIENT_ID).

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
