<#
.SYNOPSIS
Installs, upgrades or removes eryph guest services (EGS) on a Windows guest.

.DESCRIPTION
install (the default) copies windows\egs-service.exe from beside this script to
%ProgramFiles%\eryph\guest-services, creates %ProgramData%\eryph\guest-services readable
only by SYSTEM and Administrators, writes id_egs.pub there from -SshPublicKey (an
authorized_keys line, or a file holding them), registers the service eryph-guest-services
(automatic start, restart on failure, LocalSystem) and (re)starts it. Running it again
upgrades in place and changes nothing else.
uninstall stops and removes the service and the program; configuration, state and logs
stay unless -Purge.

.EXAMPLE
.\install.ps1 -SshPublicKey 'ssh-ed25519 AAAA... host'
.\install.ps1 uninstall -Purge
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('install', 'uninstall')]
    [string]$Action = 'install',
    [string]$SshPublicKey,
    [switch]$Purge,
    [switch]$NoStart
)
$ErrorActionPreference = 'Stop'

$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$principal = New-Object Security.Principal.WindowsPrincipal($identity)
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Error 'install.ps1: run it from an elevated PowerShell (Administrator)'
    exit 1
}

$serviceName = 'eryph-guest-services'
$programDir = Join-Path $env:ProgramFiles 'eryph\guest-services'
$configDir = Join-Path $env:ProgramData 'eryph\guest-services'
$stateDir = Join-Path $env:ProgramData 'eryph\provisioning'
$exe = Join-Path $programDir 'egs-service.exe'

function Stop-Egs {
    $service = Get-Service -Name $serviceName -ErrorAction SilentlyContinue
    if ($service -and $service.Status -ne 'Stopped') {
        Stop-Service -Name $serviceName -Force
        $service.WaitForStatus('Stopped', [TimeSpan]::FromSeconds(30))
    }
}

if ($Action -eq 'uninstall') {
    Stop-Egs
    if (Test-Path -LiteralPath $exe) {
        & $exe uninstall-service | Out-Null
    }
    Remove-Item -LiteralPath $programDir -Recurse -Force -ErrorAction SilentlyContinue
    if ($Purge) {
        Remove-Item -LiteralPath $configDir, $stateDir -Recurse -Force -ErrorAction SilentlyContinue
    }
    Write-Output 'eryph guest services removed'
    exit 0
}

$source = Join-Path $PSScriptRoot 'windows\egs-service.exe'
if (-not (Test-Path -LiteralPath $source)) {
    Write-Error "install.ps1: $source is missing"
    exit 1
}
Stop-Egs
New-Item -ItemType Directory -Force -Path $programDir | Out-Null
Copy-Item -LiteralPath $source -Destination $exe -Force

# Keys live here: SYSTEM and Administrators only, nothing inherited (as the service sets
# its own key folder).
New-Item -ItemType Directory -Force -Path $configDir | Out-Null
$acl = New-Object System.Security.AccessControl.DirectorySecurity
$acl.SetSecurityDescriptorSddlForm('D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')
Set-Acl -LiteralPath $configDir -AclObject $acl

if ($SshPublicKey) {
    if (Test-Path -LiteralPath $SshPublicKey -PathType Leaf) {
        $text = Get-Content -LiteralPath $SshPublicKey -Raw
    } else {
        $text = $SshPublicKey
    }
    $keys = Join-Path $configDir 'id_egs.pub'
    [IO.File]::WriteAllText($keys, $text.Trim() + "`n", (New-Object Text.UTF8Encoding $false))
}

& $exe install-service | Out-Null
if ($LASTEXITCODE -ne 0) {
    Write-Error "install.ps1: egs-service.exe install-service failed (exit $LASTEXITCODE)"
    exit 1
}
if (-not $NoStart) {
    Start-Service -Name $serviceName
}
Write-Output "eryph guest services installed in $programDir (configuration in $configDir)"
