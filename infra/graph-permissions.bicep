// Grants the instance's managed identity Microsoft Graph application permissions, so the Graph
// delta sync (graph_enrich) can read users and, optionally, group memberships.
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
var groupMemberReadAllRoleId = filter(microsoftGraph.appRoles, role => role.value == 'GroupMember.Read.All')[0].id

// Graph application permission User.Read.All: read every user's profile (delta queries on /users).
resource userReadAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  principalId: identity.properties.principalId
  resourceId: microsoftGraph.id
  appRoleId: userReadAllRoleId
}

// Graph application permission GroupMember.Read.All: read group memberships (opt-in).
resource groupMemberReadAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantGroupMemberReadAll) {
  principalId: identity.properties.principalId
  resourceId: microsoftGraph.id
  appRoleId: groupMemberReadAllRoleId
}

output grantedAppRoles array = grantGroupMemberReadAll ? [
  'User.Read.All'
  'GroupMember.Read.All'
] : [
  'User.Read.All'
]
