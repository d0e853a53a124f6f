// Grants the instance's managed identity Microsoft Graph application permissions, so the Graph
// delta sync (graph_enrich) can read users and, optionally, group memberships, or (write-back,
// GRAPH_WRITEBACK, docs/graph-writeback.md) read and update users.
//
// Kept out of main.bicep on purpose: app role assignments on Microsoft Graph are Entra changes that
// need a Privileged Role Administrator (or Global Administrator) to deploy, while main.bicep only
// needs Azure rights. Deploy it once per customer after main.bicep:
//   python -m infra.deploy graph-permissions <customer>
// Needs Bicep >= 0.36.1 and the Microsoft Graph extension declared in bicepconfig.json beside this file.

extension microsoftGraphV1

targetScope = 'resourceGroup'

@description('Name of the instance\'s user-assigned managed identity (output managedIdentityName of main.bicep).')
param managedIdentityName string

@description('Also grant GroupMember.Read.All, for enriching group memberships from Graph.')
param grantGroupMemberReadAll bool = false

@description('Grant User.ReadWrite.All instead of User.Read.All: only for an instance whose GRAPH_WRITEBACK writes the app\'s data to Entra (docs/graph-writeback.md). Off: read only.')
param grantUserReadWriteAll bool = false

// Microsoft Graph's well-known application id, the same in every tenant.
var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: managedIdentityName
}

resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

// App role ids are looked up by their value on Graph's own service principal rather than copied.
var userReadAllRoleId = filter(microsoftGraph.appRoles, role => role.value == 'User.Read.All')[0].id
var userReadWriteAllRoleId = filter(microsoftGraph.appRoles, role => role.value == 'User.ReadWrite.All')[0].id
var groupMemberReadAllRoleId = filter(microsoftGraph.appRoles, role => role.value == 'GroupMember.Read.All')[0].id

// Graph application permission User.Read.All: read every user's profile (delta queries on /users).
// Without write-back, the least the sync needs.
resource userReadAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!grantUserReadWriteAll) {
  principalId: identity.properties.principalId
  resourceId: microsoftGraph.id
  appRoleId: userReadAllRoleId
}

// Graph application permission User.ReadWrite.All: read and update every user's profile
// (PATCH /users/{id}, Microsoft Learn "Update user"); it includes reading, so it replaces
// User.Read.All. Only for write-back (opt-in).
resource userReadWriteAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantUserReadWriteAll) {
  principalId: identity.properties.principalId
  resourceId: microsoftGraph.id
  appRoleId: userReadWriteAllRoleId
}

// Graph application permission GroupMember.Read.All: read group memberships (opt-in).
resource groupMemberReadAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantGroupMemberReadAll) {
  principalId: identity.properties.principalId
  resourceId: microsoftGraph.id
  appRoleId: groupMemberReadAllRoleId
}

output grantedAppRoles array = concat(
  [grantUserReadWriteAll ? 'User.ReadWrite.All' : 'User.Read.All'],
  grantGroupMemberReadAll ? ['GroupMember.Read.All'] : []
)
